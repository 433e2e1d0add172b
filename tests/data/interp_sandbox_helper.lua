-- Lua module beside interp_hostile_recipe.lua: the sandbox lets a recipe require it.
return { answer = 42 }
